"""Geocoding (地址解析): an address, a named place or an intersection → ranked places with a
confidence — the domain's half (search keys, reading a query, scoring); the look-ups are
``layers.channels.geocoder``'s."""

from gridcore.geocoding.query import AddressQuery, Street, number_key, parse
from gridcore.geocoding.scoring import Candidate, TextMatch, number_agreement, rank
from gridcore.geocoding.text import cjk_grams, fold, search_key

__all__ = ["AddressQuery", "Candidate", "Street", "TextMatch", "cjk_grams", "fold",
           "number_agreement", "number_key", "parse", "rank", "search_key"]
