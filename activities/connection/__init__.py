"""Named connections at the moment of use: credentials read from the store, applied to a step, OAuth2 tokens
refreshed (``apply``, ``oauth``). Not a step family: no activity is defined here."""
