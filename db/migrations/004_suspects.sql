-- The suspicion queue (`curator suspects`): per (segment, facet, tag), how likely its current
-- label is wrong and why. Recomputed as a whole per tag; an item a person has labelled since
-- drops out of the review queue (the storage layer leaves out cells with a human label).
CREATE TABLE suspects (
    segment_id  VARCHAR NOT NULL,
    facet       VARCHAR NOT NULL,
    tag         VARCHAR NOT NULL,
    present     BOOLEAN NOT NULL,           -- the label judged: the effective one when computed
    score       DOUBLE NOT NULL,            -- 0..1; from 0.5 up confident learning flags it
    probability DOUBLE,                     -- the out-of-fold probe's P(tag present)
    reason      VARCHAR NOT NULL,
    embedding   VARCHAR NOT NULL,           -- the embedding model the probes were trained on
    computed_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (segment_id, facet, tag)
);
