"""The SQL of database.db, version 2, and the migration of a version-1 file to it (used by db.py).

`runs`: one row per trained model: configuration as JSON, `n_train` (how many images trained it),
accuracy and loss on the training, validation and test sets (NULL where not measured),
`reported_split` (where its headline accuracy comes from: 'test' once the test set was measured,
else 'valid'), timings, library versions. `history`: one row per epoch. `predictions`: one row per
image of the 'train', 'valid' or 'test' split: the raw 784 pixels as a BLOB in `input`, `label`,
`predicted`, `confidence` and the ten probabilities p0..p9.

Each script is a list of statements separated by ";\\n", run by db.connect inside the one
write transaction (BEGIN IMMEDIATE) it opened; either every statement takes effect or none.
"""
SCHEMA_VERSION = 2
APPLICATION_ID = 0x4D4E4953  # "MNIS": marks a database as this project's
PROBS = [f"p{d}" for d in range(10)]

TABLES = f"""
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT NOT NULL,
    n_train INTEGER,
    train_accuracy REAL, train_loss REAL, valid_accuracy REAL, valid_loss REAL, test_accuracy REAL, test_loss REAL,
    train_seconds REAL,
    reported_split TEXT NOT NULL CHECK (reported_split IN ('valid', 'test')),
    versions TEXT NOT NULL
);
CREATE TABLE history (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    train_loss REAL, train_accuracy REAL, valid_loss REAL, valid_accuracy REAL,
    test_loss REAL, test_accuracy REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE predictions (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    split TEXT NOT NULL CHECK (split IN ('train', 'valid', 'test')),
    idx INTEGER NOT NULL,
    input BLOB NOT NULL CHECK (length(input) = 784),
    label INTEGER NOT NULL CHECK (label BETWEEN 0 AND 9),
    predicted INTEGER NOT NULL CHECK (predicted BETWEEN 0 AND 9),
    confidence REAL NOT NULL,
    {", ".join(p + " REAL NOT NULL" for p in PROBS)},
    PRIMARY KEY (run_id, split, idx)
);
"""
INDEXES_AND_VIEWS = """
CREATE INDEX predictions_by_digit ON predictions (run_id, split, label, predicted);
CREATE INDEX predictions_by_confidence ON predictions (run_id, split, confidence);
CREATE VIEW digit_accuracy AS
    SELECT run_id, split, label, COUNT(*) AS n, SUM(predicted = label) AS correct,
           AVG(predicted = label) AS accuracy
    FROM predictions GROUP BY run_id, split, label;
CREATE VIEW confusion AS
    SELECT run_id, split, label, predicted, COUNT(*) AS n
    FROM predictions GROUP BY run_id, split, label, predicted;
CREATE VIEW mistakes AS
    SELECT * FROM predictions WHERE predicted != label;
"""
VERSION = f"""
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""
SCHEMA = TABLES + INDEXES_AND_VIEWS + VERSION

# Version 1 had no validation columns and allowed only 'train' and 'test' predictions. Its runs
# were judged on the test set (reported_split 'test'); n_train comes from their configuration
# (NULL there meant all 60,000 images). Foreign keys are off while connect migrates, so the old
# tables can be dropped before the new ones take their names.
_PREDICTION_COLUMNS = "run_id, split, idx, input, label, predicted, confidence, " + ", ".join(PROBS)
MIGRATE_1_TO_2 = (
    """
DROP VIEW digit_accuracy;
DROP VIEW confusion;
DROP VIEW mistakes;
DROP INDEX predictions_by_digit;
DROP INDEX predictions_by_confidence;
ALTER TABLE runs RENAME TO runs_v1;
ALTER TABLE history RENAME TO history_v1;
ALTER TABLE predictions RENAME TO predictions_v1;
""" + TABLES + f"""
INSERT INTO runs (id, name, started_at, finished_at, config, dataset, n_train, train_accuracy, train_loss,
                  test_accuracy, test_loss, train_seconds, reported_split, versions)
    SELECT id, name, started_at, finished_at, config, dataset,
           COALESCE(json_extract(config, '$.n_train'), 60000), train_accuracy, train_loss,
           test_accuracy, test_loss, train_seconds, 'test', versions FROM runs_v1;
INSERT INTO history (run_id, epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds)
    SELECT run_id, epoch, train_loss, train_accuracy, test_loss, test_accuracy, seconds FROM history_v1;
INSERT INTO predictions ({_PREDICTION_COLUMNS}) SELECT {_PREDICTION_COLUMNS} FROM predictions_v1;
DROP TABLE predictions_v1;
DROP TABLE history_v1;
DROP TABLE runs_v1;
""" + INDEXES_AND_VIEWS + VERSION)
