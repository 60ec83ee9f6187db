"""Media helpers shared by every video backend: speech synthesis and encoding."""
