-- Schema of data/anakinra.duckdb, built by `python -m evidence.extraction.build` from data/extraction/*.csv.
-- The validator (evidence/extraction/validate.py) reports problems per cell first; these constraints are the
-- second line of defence, so a build that bypassed validation still cannot store impossible data.

CREATE TABLE studies (
    study_id VARCHAR PRIMARY KEY,
    first_author VARCHAR,
    year INTEGER CHECK (year BETWEEN 1990 AND 2100),
    title VARCHAR NOT NULL,
    venue VARCHAR,
    publication_type VARCHAR NOT NULL
        CHECK (publication_type IN ('full_paper', 'abstract', 'letter', 'registry', 'news_report',
            'not_reported')),
    pmid BIGINT,
    doi VARCHAR,
    nct_id VARCHAR,
    url VARCHAR,
    centres VARCHAR,
    country VARCHAR,
    design VARCHAR NOT NULL CHECK (design IN ('retrospective', 'prospective_single_arm',
        'prospective_phase1', 'prospective_phase2', 'registry_only', 'not_reported')),
    enrolment_period VARCHAR,
    in_review_window BOOLEAN,  -- NULL: the report's date could not be read
    review_inclusion VARCHAR NOT NULL
        CHECK (review_inclusion IN ('likely', 'possible', 'unlikely', 'excluded')),
    review_inclusion_reason VARCHAR NOT NULL,
    same_patients_as VARCHAR,
    extraction_status VARCHAR NOT NULL
        CHECK (extraction_status IN ('numbers_extracted', 'partial', 'identified_only')),
    notes VARCHAR
);

CREATE TABLE sources (
    source_id VARCHAR PRIMARY KEY,
    citation VARCHAR NOT NULL,
    kind VARCHAR NOT NULL CHECK (kind IN ('primary_paper', 'primary_abstract', 'registry',
        'secondary_review', 'news_report')),
    url VARCHAR,
    pmid BIGINT,
    doi VARCHAR,
    notes VARCHAR
);

CREATE TABLE cohorts (
    cohort_id VARCHAR PRIMARY KEY,
    study_id VARCHAR NOT NULL REFERENCES studies (study_id),
    label VARCHAR NOT NULL,
    indication VARCHAR NOT NULL CHECK (indication IN ('treatment', 'prophylaxis')),
    sub_indication VARCHAR NOT NULL,
    arm VARCHAR NOT NULL CHECK (arm IN ('anakinra', 'comparator')),
    comparator_for VARCHAR,
    disease VARCHAR NOT NULL,
    n_patients INTEGER CHECK (n_patients >= 0),
    n_axicel INTEGER CHECK (n_axicel >= 0),
    n_brexucel INTEGER CHECK (n_brexucel >= 0),
    n_tisacel INTEGER CHECK (n_tisacel >= 0),
    n_lisocel INTEGER CHECK (n_lisocel >= 0),
    n_other_product INTEGER CHECK (n_other_product >= 0),
    products VARCHAR,
    dose_mg_day_min DOUBLE CHECK (dose_mg_day_min >= 0),
    dose_mg_day_max DOUBLE CHECK (dose_mg_day_max >= dose_mg_day_min),
    dose_mg_kg_day_min DOUBLE CHECK (dose_mg_kg_day_min >= 0),
    dose_mg_kg_day_max DOUBLE CHECK (dose_mg_kg_day_max >= dose_mg_kg_day_min),
    dose_band VARCHAR NOT NULL CHECK (dose_band IN ('le200', 'gt200', 'mixed', 'not_reported')),
    route VARCHAR NOT NULL CHECK (route IN ('SC', 'IV', 'SC_IV', 'not_reported')),
    schedule VARCHAR,
    grading_system VARCHAR NOT NULL
        CHECK (grading_system IN ('ASTCT', 'CTCAE', 'CARTOX', 'other', 'not_reported')),
    n_source_id VARCHAR REFERENCES sources (source_id),
    n_locator VARCHAR,
    n_quote VARCHAR,
    product_source_id VARCHAR REFERENCES sources (source_id),
    product_locator VARCHAR,
    product_quote VARCHAR,
    dose_source_id VARCHAR REFERENCES sources (source_id),
    dose_locator VARCHAR,
    dose_quote VARCHAR,
    grading_source_id VARCHAR REFERENCES sources (source_id),
    grading_locator VARCHAR,
    grading_quote VARCHAR,
    notes VARCHAR
);

CREATE TABLE outcomes (
    outcome_id VARCHAR PRIMARY KEY,
    cohort_id VARCHAR NOT NULL REFERENCES cohorts (cohort_id),
    study_id VARCHAR NOT NULL REFERENCES studies (study_id),
    outcome VARCHAR NOT NULL,
    events INTEGER CHECK (events >= 0),
    total INTEGER CHECK (total >= 0),
    value DOUBLE,
    value_low DOUBLE,
    value_high DOUBLE,
    unit VARCHAR NOT NULL,
    statistic VARCHAR NOT NULL,
    definition VARCHAR,
    timepoint VARCHAR,
    source_id VARCHAR NOT NULL REFERENCES sources (source_id),
    locator VARCHAR NOT NULL,
    quote VARCHAR NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('primary', 'secondary', 'derived')),
    derivation VARCHAR,
    use_in_analysis BOOLEAN NOT NULL,
    conflict_note VARCHAR,
    caveat VARCHAR,  -- what a reader must know before trusting the number
    CHECK (events <= total),
    CHECK (status <> 'derived' OR derivation IS NOT NULL)
);

CREATE TABLE review_figures (
    figure_id VARCHAR PRIMARY KEY,
    description VARCHAR NOT NULL,
    quote VARCHAR NOT NULL,
    numerator INTEGER,
    denominator INTEGER,
    reported_percent DOUBLE,
    sum_of VARCHAR,
    note VARCHAR,
    computed_percent DOUBLE,
    percent_check VARCHAR NOT NULL CHECK (percent_check IN ('agrees', 'disagrees', 'not_applicable')),
    components_total INTEGER,
    sum_check VARCHAR NOT NULL CHECK (sum_check IN ('agrees', 'disagrees', 'not_applicable')),
    check_message VARCHAR NOT NULL
);

CREATE TABLE quality (
    study_id VARCHAR NOT NULL REFERENCES studies (study_id),
    tool VARCHAR NOT NULL,
    item VARCHAR NOT NULL,
    judgement VARCHAR NOT NULL CHECK (judgement IN ('yes', 'no', 'unclear', 'not_applicable')),
    reason VARCHAR NOT NULL
);

CREATE TABLE build_info (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per product a cohort contains: a cohort with several products matches each of them.
CREATE VIEW cohort_products AS
SELECT cohort_id, trim(p.product) AS product
FROM cohorts, unnest(string_split(coalesce(products, ''), ';')) AS p(product)
WHERE trim(p.product) <> '';
