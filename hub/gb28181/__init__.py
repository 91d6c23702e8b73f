"""City networking (GB/T 28181): the hub as a lower-level platform of the city's. An adapter of the hub: it
reads the same store and the same live path as the console, and a failure of the upper platform never touches
the alarm path."""
