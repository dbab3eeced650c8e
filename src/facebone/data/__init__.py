"""Data: face datasets in their own layouts, and pair protocols built from them."""
