"""Authentication and authorisation: password hashing, TOTP, and the pure permission table."""
