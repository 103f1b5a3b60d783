"""Teams (workspaces), members with roles, invitations, and the team's sites."""
