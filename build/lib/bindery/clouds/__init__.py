"""Product Cloud APIs: configuration, and one connector module per kind behind one Protocol."""
