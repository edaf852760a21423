"""What every API endpoint shares: token authentication, the error body, pagination."""
