"""The exceptions the database raises for problems a user can fix."""


class DatabaseError(Exception):
    """An unreachable, locked, foreign or wrongly versioned database; the message names the fix."""


class NotFound(DatabaseError):
    """No experiment or candidate with that name or id."""
