"""The console's map: the district's grid boundaries (imported from its GeoJSON) and the tile source."""
