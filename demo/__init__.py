"""The demo city (``gridcore demo``): central Helsinki from real OpenStreetMap data (© OSM
contributors, ODbL) plus synthetic organisation, 9+X records and four months of case history,
loaded through the product's own import, intake and lifecycle code.

Seed data, not product: it may import ``layers``, ``spatial`` and ``gridcore``; nothing in the
product imports it but the command line.
"""
