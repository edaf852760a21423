"""What every API endpoint shares: the error body, pagination, filters, transactions."""
