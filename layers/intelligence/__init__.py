"""Storage of the intelligence room: the case history as models read it, the model table
(store, activate, the active model of each server process) and the stored forecast."""
