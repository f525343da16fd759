-- Named selections made by `curator rebalance`: which segments go into a training set, how
-- many times each is repeated, and on which side of the train/validation split it falls.
CREATE TABLE selections (
    name        VARCHAR PRIMARY KEY,
    method      VARCHAR NOT NULL,           -- how it was chosen: repeat-factor, budgeted, random, ...
    settings    JSON,                       -- target, budget, seed, split fraction, ...
    report      JSON,                       -- per-tag counts before/after, MeanIR, entropy, hours
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE selection_items (
    selection   VARCHAR NOT NULL,
    segment_id  VARCHAR NOT NULL,
    repeats     INTEGER NOT NULL,           -- copies of the segment in the training set, >= 1
    weight      DOUBLE NOT NULL,            -- sampling weight before rounding to repeats
    split       VARCHAR NOT NULL,           -- train | validation
    PRIMARY KEY (selection, segment_id)
);
