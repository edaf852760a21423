"""Exchange connections: a portfolio kept in step with a Binance account through a read-only API
key (models in portfolio.models; the secret encrypted by `crypto`, the signed client in `client`,
the import in `sync`, writes in `services`)."""
