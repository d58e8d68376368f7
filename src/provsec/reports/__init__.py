"""Data loaders and calculations for the monthly reports (notebooks/), and the province's working-hours
calendar (Điều 8.3b, 9.2b) that the incident register and the reports share."""
