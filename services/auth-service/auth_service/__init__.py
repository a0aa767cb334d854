"""auth-service: users, credentials, roles and tokens."""
