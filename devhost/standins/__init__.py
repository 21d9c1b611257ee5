"""Local stand-ins for outside services that cannot run here."""
