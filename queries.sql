-- Every query the app and its library run. Format (aiosql convention): `-- name: x`, a comment
-- saying what it is for, then the statement. Parameters are bound by DuckDB ($name), never
-- pasted into the text. Empty list parameters mean "no restriction" for that filter.

-- name: cohort_slice
-- Anakinra cohorts that match the filters, one row each: the slice every page pools. Each filter
-- of evidence/filters.py (FILTERS) has its clause here, named by its parameters; an empty list or
-- NULL means "no restriction". Only what callers read is selected (ids to pass on, n for
-- the caption); each page queries the details it shows. list_contains rather than
-- IN (SELECT unnest(...)), which DuckDB plans as a subquery.
WITH product_lists AS (
    SELECT cohort_id, list(product) AS products_list FROM cohort_products GROUP BY cohort_id
)
SELECT c.cohort_id, c.study_id, c.label, c.n_patients
FROM cohorts AS c
JOIN studies AS s USING (study_id)
LEFT JOIN product_lists AS pl USING (cohort_id)
WHERE c.arm = 'anakinra'
  AND s.same_patients_as IS NULL
  AND ($window = 'all' OR coalesce(s.in_review_window, false))
  AND (len($indication::VARCHAR[]) = 0
       OR list_contains($indication::VARCHAR[], c.indication)
       OR list_contains($indication::VARCHAR[], c.sub_indication))
  AND (len($product::VARCHAR[]) = 0
       OR list_has_any($product::VARCHAR[], coalesce(pl.products_list, []::VARCHAR[]))
       OR (list_contains($product::VARCHAR[], 'mixed') AND len(pl.products_list) > 1)
       OR (list_contains($product::VARCHAR[], 'not_reported') AND pl.products_list IS NULL))
  AND ($product_mix = 'any' OR len($product::VARCHAR[]) = 0
       OR (pl.products_list IS NOT NULL
           AND len(list_filter(pl.products_list, lambda p: NOT list_contains($product::VARCHAR[], p)))
               = 0))
  AND ($dose_min::DOUBLE IS NULL OR c.dose_mg_day_max >= $dose_min::DOUBLE)
  AND ($dose_max::DOUBLE IS NULL OR c.dose_mg_day_min <= $dose_max::DOUBLE)
  AND (len($dose_band::VARCHAR[]) = 0 OR list_contains($dose_band::VARCHAR[], c.dose_band))
  AND (len($route::VARCHAR[]) = 0 OR list_contains($route::VARCHAR[], c.route))
  AND (len($grading::VARCHAR[]) = 0 OR list_contains($grading::VARCHAR[], c.grading_system))
  AND (len($design::VARCHAR[]) = 0 OR list_contains($design::VARCHAR[], s.design))
  AND (len($pubtype::VARCHAR[]) = 0 OR list_contains($pubtype::VARCHAR[], s.publication_type))
  AND ($year_min::INTEGER IS NULL OR s.year >= $year_min::INTEGER)
  AND ($year_max::INTEGER IS NULL OR s.year <= $year_max::INTEGER)
  AND ($min_n::INTEGER IS NULL OR c.n_patients >= $min_n::INTEGER)
  AND NOT list_contains($exclude::VARCHAR[], c.study_id)
ORDER BY s.year NULLS LAST, c.label;

-- name: poolable_outcomes
-- Counts (events of total) chosen for analysis in every cohort, every outcome: the pooling input,
-- with the provenance the forest plot's rows carry and the cohort fields the subgroup and dose
-- views split on. Read once per data version; a slice's rows are picked from it by the cohort
-- ids `cohort_slice` returned (where the filters are applied).
SELECT o.outcome, o.cohort_id, o.study_id, c.label, o.events, o.total, o.definition, o.locator,
       o.quote, src.citation AS source, c.dose_mg_day_min, c.dose_mg_day_max, c.dose_band, c.products,
       c.grading_system, c.sub_indication
FROM outcomes AS o
JOIN cohorts AS c USING (cohort_id)
JOIN sources AS src USING (source_id)
WHERE o.use_in_analysis
  AND o.events IS NOT NULL AND o.total IS NOT NULL AND o.total > 0
ORDER BY o.outcome, c.label;

-- name: outcome_rows
-- Every extracted number (counts, percents, medians) in the given cohorts, with its provenance
-- and the caveat a reader must know before trusting it.
SELECT o.outcome_id, o.cohort_id, o.study_id, c.label, c.indication, c.arm, o.outcome,
       o.events, o.total, o.value, o.value_low, o.value_high, o.unit, o.statistic, o.definition,
       o.timepoint, o.status, o.derivation, o.use_in_analysis, o.conflict_note, o.caveat,
       o.locator, o.quote, src.citation AS source, src.kind AS source_kind,
       src.url AS source_url
FROM outcomes AS o
JOIN cohorts AS c USING (cohort_id)
JOIN sources AS src USING (source_id)
WHERE list_contains($cohort_ids::VARCHAR[], o.cohort_id)
ORDER BY c.label, o.outcome, o.use_in_analysis DESC;

-- name: comparator_outcomes
-- Outcomes of comparator cohorts (patients without anakinra) paired with the anakinra cohorts given.
SELECT comp.comparator_for AS cohort_id, comp.cohort_id AS comparator_id,
       comp.label AS comparator_label, o.outcome, o.events, o.total, o.value, o.unit,
       o.statistic, o.definition, o.status, o.locator, o.quote, src.citation AS source
FROM cohorts AS comp
JOIN outcomes AS o ON o.cohort_id = comp.cohort_id
JOIN sources AS src USING (source_id)
WHERE comp.arm = 'comparator'
  AND list_contains($cohort_ids::VARCHAR[], comp.comparator_for)
  AND o.use_in_analysis
ORDER BY comp.label, o.outcome;

-- name: studies_table
-- One row per report (every study, pooled or not), for the Studies page and the downloads.
SELECT s.study_id, s.first_author, s.year, s.title, s.venue, s.publication_type, s.pmid, s.doi,
       'https://pubmed.ncbi.nlm.nih.gov/' || s.pmid || '/' AS pubmed,
       'https://doi.org/' || s.doi AS doi_link,
       s.nct_id, s.url, s.centres, s.country, s.design, s.enrolment_period, s.in_review_window,
       s.review_inclusion, s.review_inclusion_reason, s.same_patients_as, s.extraction_status,
       s.notes,
       (SELECT count(*) FROM cohorts AS c WHERE c.study_id = s.study_id) AS n_cohorts,
       (SELECT count(*) FROM outcomes AS o WHERE o.study_id = s.study_id) AS n_numbers
FROM studies AS s
ORDER BY s.year NULLS LAST, s.study_id;

-- name: cohort_facts
-- A cohort's descriptive facts with where each was read (the provenance of n, products, dose, grading).
SELECT c.*, ns.citation AS n_source, ps.citation AS product_source, ds.citation AS dose_source,
       gs.citation AS grading_source
FROM cohorts AS c
LEFT JOIN sources AS ns ON ns.source_id = c.n_source_id
LEFT JOIN sources AS ps ON ps.source_id = c.product_source_id
LEFT JOIN sources AS ds ON ds.source_id = c.dose_source_id
LEFT JOIN sources AS gs ON gs.source_id = c.grading_source_id
WHERE list_contains($study_ids::VARCHAR[], c.study_id)
ORDER BY c.study_id, c.arm, c.label;

-- name: grading_facts
-- What a certainty rating needs of each cohort and its study: who the patients are (indirectness),
-- how the study was published and registered (publication bias). For the given cohorts.
SELECT c.cohort_id, c.study_id, c.label, c.n_patients, c.indication, c.sub_indication, c.disease,
       c.products, c.grading_system, c.dose_band, s.publication_type, s.nct_id, s.design
FROM cohorts AS c
JOIN studies AS s USING (study_id)
WHERE list_contains($cohort_ids::VARCHAR[], c.cohort_id)
ORDER BY c.cohort_id;

-- name: trial_reports
-- Every registered trial (NCT id) with how each of its reports was published and the cohorts they
-- hold, to find trials registered without a full report.
SELECT s.nct_id, s.study_id, s.publication_type, list(c.cohort_id) FILTER (WHERE c.cohort_id
       IS NOT NULL) AS cohort_ids
FROM studies AS s
LEFT JOIN cohorts AS c USING (study_id)
WHERE s.nct_id IS NOT NULL
GROUP BY ALL
ORDER BY s.nct_id, s.study_id;

-- name: quality_items
-- Quality checklist judgements for the given studies.
SELECT study_id, tool, item, judgement, reason
FROM quality
WHERE list_contains($study_ids::VARCHAR[], study_id)
ORDER BY study_id, item;

-- name: review_figures
-- The review's headline figures with the build's recomputation of each.
SELECT figure_id, description, quote, numerator, denominator, reported_percent, sum_of, note,
       computed_percent, percent_check, components_total, sum_check, check_message
FROM review_figures
ORDER BY figure_id;

-- name: data_ranges
-- Bounds of the range filters' sliders (columns named as their link keys).
SELECT min(c.dose_mg_day_min) AS dose_min, max(c.dose_mg_day_max) AS dose_max,
       min(s.year) AS year_min, max(s.year) AS year_max
FROM cohorts AS c JOIN studies AS s USING (study_id)
WHERE c.arm = 'anakinra';

-- name: build_info
-- The data version: build time, origin and sheet checksums.
SELECT key, value FROM build_info ORDER BY key;

-- name: synthetic_studies
-- Studies made by evidence.synthetic (their notes start with contract.SYNTHETIC_MARK) and all
-- studies, for the banner that says when generated data is in use.
SELECT count(*) FILTER (WHERE starts_with(coalesce(notes, ''), $mark)) AS synthetic,
       count(*) AS studies
FROM studies;

-- name: table_counts
-- Row counts per table, for the Methods & data page.
SELECT 'studies' AS table_name, count(*) AS n_rows FROM studies
UNION ALL SELECT 'sources', count(*) FROM sources
UNION ALL SELECT 'cohorts', count(*) FROM cohorts
UNION ALL SELECT 'outcomes', count(*) FROM outcomes
UNION ALL SELECT 'review_figures', count(*) FROM review_figures
UNION ALL SELECT 'quality', count(*) FROM quality;

-- name: holdings
-- What the database holds per indication and review window, for comparison with the review's totals.
SELECT c.indication, s.in_review_window,
       count(DISTINCT s.study_id) AS studies,
       count(*) AS cohorts,
       sum(c.n_patients) AS patients,
       count(*) FILTER (WHERE c.n_patients IS NULL) AS cohorts_without_n,
       count(DISTINCT s.study_id) FILTER (WHERE s.extraction_status = 'identified_only')
           AS studies_without_numbers
FROM cohorts AS c
JOIN studies AS s USING (study_id)
WHERE c.arm = 'anakinra' AND s.same_patients_as IS NULL
GROUP BY ALL
ORDER BY c.indication, s.in_review_window DESC;
