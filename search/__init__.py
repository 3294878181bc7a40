"""Search spaces, weight-sharing supernets and the constrained search methods."""
