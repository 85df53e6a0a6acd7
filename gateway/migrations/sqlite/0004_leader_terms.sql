-- Terms of leader work: which replica led, with which fencing token, from when to when.
CREATE TABLE leader_terms (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    term        INTEGER NOT NULL,   -- leaseTransitions of the leader lease (fencing token)
    started_at  INTEGER NOT NULL,   -- unix milliseconds
    active_at   INTEGER NOT NULL,   -- last time leader work ran in this term
    ended_at    INTEGER             -- NULL: running, or the replica died
);
CREATE INDEX leader_terms_started ON leader_terms (started_at);
