"""Streamlit glue: the only package below the pages that imports streamlit.

Pages call `evidence.ui` for the filter state (bound to the URL), cached data access keyed on the
filter object, number formats and the few components every page shares.
"""
