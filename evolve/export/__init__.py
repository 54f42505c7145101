"""Export of a candidate as one standalone speedrun script, and its verification."""
