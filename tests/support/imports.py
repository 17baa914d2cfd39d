"""Shared builders for the import tests: SF neighbourhoods as communities under a planted
district and street (the real data has no Chinese-style parents)."""

from __future__ import annotations

import geopandas as gpd
import shapely

from tests.support.data import shared_file

SF_DISTRICT = "310101"
SF_STREET = "310101001"


def sf_neighbourhoods() -> gpd.GeoDataFrame:
    gdf = gpd.read_file(shared_file("san_francisco/sf_analysis_neighborhoods.geojson"))
    gdf = gdf.sort_values("nhood").reset_index(drop=True)
    gdf["code"] = [f"{SF_STREET}{i + 1:03d}" for i in range(len(gdf))]
    return gdf.rename(columns={"nhood": "name"})


def sf_parents(communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    city = shapely.union_all(communities.geometry.to_numpy())
    return gpd.GeoDataFrame({"code": [SF_DISTRICT, SF_STREET],
                             "name": ["San Francisco", "San Francisco street"],
                             "parent_code": [None, SF_DISTRICT]},
                            geometry=[city, city], crs=4326)


def sf_tracts(communities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    tracts = gpd.read_file(shared_file("san_francisco/sf_census_tracts_2010_with_nhood.geojson"))
    by_name = dict(zip(communities["name"], communities["code"], strict=True))
    tracts["community_code"] = tracts["nhood"].map(by_name)
    tracts["name"] = "tract " + tracts["tractce10"]
    return tracts


def load_sf(engine) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:  # noqa: ANN001
    from layers.exchange.imports import load_areas, load_grids

    hoods = sf_neighbourhoods()
    load_areas(engine, sf_parents(hoods))
    load_areas(engine, hoods, level="community")
    tracts = sf_tracts(hoods)
    load_grids(engine, tracts, note="SF census tracts")
    return hoods, tracts
