"""HTCondor-facing parts: submit-file parsing, the job event log writer and the dry-run emulator."""
