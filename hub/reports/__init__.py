"""Daily and weekly figures for the district."""
