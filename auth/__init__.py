"""Who may do what: signed expiring tokens and the team-membership rule every service applies."""
