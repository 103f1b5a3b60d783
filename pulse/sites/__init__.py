"""Sites: the websites a team measures."""
