"""Tools for developing provsec itself (README generation, lint helpers); not used at run time."""
