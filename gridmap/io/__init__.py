"""Reading and writing layer files (GeoJSON, GeoPackage, Shapefile, GeoParquet, CSV)."""
