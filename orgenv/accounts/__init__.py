"""Sign-in, re-authentication and second factors: what an account does for itself."""
