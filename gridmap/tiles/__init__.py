"""Vector tiles from PostGIS and folium map builders."""
