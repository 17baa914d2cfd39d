"""Cases (案卷) in storage. The path of a report: ``intake`` (the one intake service) validates
with the domain, reads its surroundings in one statement (``survey``), works each case out with
the domain (resolve, dispatch, duplicates, deadline) and stores the group in one statement
(``write``). Lifecycle steps (``transitions``) ask ``gridcore.lifecycle`` and store its answer;
``queries`` lists cases, ``view`` reads one as the API shows it, ``photos`` keeps their photos.

May import ``layers.grids`` and everything below it, ``spatial`` and ``gridcore``; not
``layers.ogc``.
"""
