-- Terms of leader work: which replica led, with which fencing token, from when to when.
CREATE TABLE leader_terms (
    id          BIGSERIAL PRIMARY KEY,
    instance_id TEXT NOT NULL,
    term        BIGINT NOT NULL,    -- leaseTransitions of the leader lease (fencing token)
    started_at  BIGINT NOT NULL,    -- unix milliseconds
    active_at   BIGINT NOT NULL,    -- last time leader work ran in this term
    ended_at    BIGINT              -- NULL: running, or the replica died
);
CREATE INDEX leader_terms_started ON leader_terms (started_at);
