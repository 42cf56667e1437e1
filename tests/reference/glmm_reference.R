# Golden values for evidence/meta/glmm.py: metafor::rma.glmm(measure = "PLO") with its
# defaults (method = "ML", model = "UM.FS", nAGQ = 7, fitted by lme4::glmer).
#
# Usage: Rscript tests/reference/glmm_reference.R [output.json]
#   (default output: tests/reference/golden_glmm.json next to this script)
# Deterministic (no random numbers: every input is written out below), about 5 s.
# Needs R with metafor and jsonlite (metafor pulls in lme4 for this model).

suppressPackageStartupMessages({
  library(metafor)
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) >= 1) {
  args[1]
} else {
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  file.path(dirname(normalizePath(script)), "golden_glmm.json")
}

# Published anchors: Stijnen, Hamza & Ozdemir (2010) Stat Med 29:3046, Table II (p. 3050), as
# reproduced by metafor's tests/testthat/test_analysis_example_stijnen2010.r; dat.debruin2009 from
# the rma.glmm help page (pkgdown, metafor 5.1-12). Inputs are the counts of metadat's
# dat.nielweise2007, dat.debruin2009 and dat.pritz1997, written out below.
cases <- list(
  stijnen2010_ctrl = list(
    x = c(3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 0, 1, 3, 1),
    n = c(117, 35, 195, 136, 157, 139, 177, 39, 103, 122, 64, 58, 175, 180, 105, 262, 362, 69),
    about = "dat.nielweise2007 control arm (Stijnen 2010 Table II)",
    published = list(estimate = "-3.4964", se = "0.2570", tau2 = "0.8124",
                     bt_estimate = "0.0294", bt_ci_lb = "0.0180", bt_ci_ub = "0.0478")),
  stijnen2010_trt = list(
    x = c(0, 1, 2, 0, 5, 1, 1, 1, 1, 1, 0, 0, 3, 6, 0, 0, 1, 4),
    n = c(116, 44, 208, 130, 151, 98, 174, 74, 97, 113, 66, 70, 188, 187, 118, 252, 345, 64),
    about = "dat.nielweise2007 treatment arm, 6 zero-event studies (Stijnen 2010 Table II)",
    published = list(estimate = "-4.8121", se = "0.3555", tau2 = "0.8265",
                     bt_estimate = "0.0081", bt_ci_lb = "0.0040", bt_ci_ub = "0.0161")),
  debruin2009 = list(
    x = c(11, 24, 179, 82, 60, 11, 99, 9, 88, 17, 26, 23, 40),
    n = c(29, 33, 326, 240, 110, 29, 244, 17, 215, 26, 138, 55, 54),
    about = "dat.debruin2009 (rma.glmm help page example)",
    published = list(bt_estimate = "0.4721", bt_ci_lb = "0.3822", bt_ci_ub = "0.5638",
                     bt_pi_lb = "0.2021", bt_pi_ub = "0.7594")),
  pritz1997 = list(
    x = c(16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6),
    n = c(17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10),
    about = "dat.pritz1997 (failed under metafor 2.0-0, metafor issue #26)"),
  k2_tau0 = list(x = c(3, 5), n = c(20, 25), about = "k = 2, tau2 = 0 (boundary)"),
  k2_het = list(x = c(1, 15), n = c(20, 25),
                about = "k = 2, large heterogeneity; R's SE comes from a Hessian spoiled by PIRLS noise"),
  k2_near0 = list(x = c(14, 6), n = c(54, 43), about = "k = 2, tau2 near 0 (0.0047)"),
  k3_tau0 = list(x = c(2, 5, 9), n = c(20, 25, 30), about = "k = 3, tau2 = 0 (boundary)"),
  k3_het = list(x = c(1, 4, 15), n = c(30, 20, 25), about = "k = 3, heterogeneous"),
  k5 = list(x = c(2, 7, 1, 12, 4), n = c(15, 40, 9, 33, 22), about = "k = 5"),
  near0_k6 = list(x = c(5, 3, 2, 8, 11, 13), n = c(46, 11, 23, 33, 49, 46),
                  about = "tau2 near 0 (0.045)"),
  near0_k7 = list(x = c(14, 5, 8, 14, 4, 10, 5), n = c(48, 29, 34, 46, 43, 55, 29),
                  about = "tau2 near 0 (0.050)"),
  zeros_k7 = list(x = c(0, 5, 0, 2, 5, 2, 4), n = c(6, 56, 7, 58, 25, 6, 59),
                  about = "two zero-event studies, n 6-59"),
  zeros_k10 = list(x = c(1, 8, 0, 12, 0, 11, 4, 0, 2, 2), n = c(7, 60, 5, 48, 11, 51, 13, 6, 18, 25),
                   about = "three zero-event studies, n 5-60"),
  zeros_mostly = list(x = c(0, 0, 0, 1), n = c(10, 20, 15, 30), about = "three of four studies with 0 events"),
  zeros_one_event = list(x = c(0, 0, 1, 0, 0), n = c(5, 8, 60, 7, 6), about = "one event in total"),
  zero_and_half = list(x = c(0, 5), n = c(10, 10), about = "k = 2: 0/10 and 5/10"),
  big_het = list(x = c(1, 40, 3, 55, 20, 2), n = c(50, 50, 40, 60, 45, 30),
                 about = "large heterogeneity (tau2 about 5.3)"),
  proj01 = list(x = c(3, 1, 0, 9, 0), n = c(58, 12, 58, 35, 12), about = "project-like"),
  proj02 = list(x = c(3, 2, 2), n = c(51, 28, 51), about = "project-like"),
  proj03 = list(x = c(9, 16, 25, 22), n = c(18, 26, 41, 27), about = "project-like"),
  proj04 = list(x = c(31, 6, 22), n = c(48, 17, 33), about = "project-like"),
  proj05 = list(x = c(8, 2, 11, 3, 1, 3, 0, 10), n = c(45, 43, 38, 9, 8, 9, 12, 36),
                about = "project-like"),
  proj06 = list(x = c(0, 4, 3, 0, 4, 1, 0, 4, 1, 3, 5, 4, 1, 17),
                n = c(49, 7, 26, 25, 60, 11, 17, 30, 16, 35, 38, 57, 38, 31), about = "project-like"),
  proj07 = list(x = c(8, 1, 19, 21, 1, 1, 5), n = c(35, 10, 40, 52, 42, 8, 18), about = "project-like"),
  proj08 = list(x = c(1, 6, 5, 12, 1, 5, 3, 2, 2), n = c(12, 22, 48, 49, 10, 44, 23, 6, 23),
                about = "project-like"),
  proj09 = list(x = c(7, 2, 7, 3, 5, 1, 1, 5, 0, 0, 2, 4, 1),
                n = c(46, 57, 53, 59, 58, 32, 35, 12, 42, 8, 28, 56, 17), about = "project-like"),
  proj10 = list(x = c(0, 5, 3, 1, 0, 1, 2, 0, 0, 1), n = c(16, 48, 34, 42, 48, 42, 23, 15, 35, 56),
                about = "project-like, 4 zero-event studies"),
  proj_k50 = list(
    x = c(0, 2, 1, 7, 0, 2, 2, 8, 2, 7, 7, 2, 2, 2, 17, 1, 0, 0, 1, 0, 25, 5, 2, 1, 4, 0, 1, 2,
          10, 0, 1, 18, 2, 1, 3, 3, 1, 0, 3, 3, 0, 5, 3, 3, 1, 7, 2, 1, 2, 0),
    n = c(48, 49, 45, 51, 51, 35, 18, 59, 51, 18, 20, 41, 42, 8, 58, 36, 5, 27, 41, 19, 43, 60,
          40, 27, 15, 23, 41, 12, 60, 11, 21, 60, 36, 37, 30, 54, 35, 5, 49, 38, 11, 28, 35, 25,
          58, 44, 20, 8, 35, 18),
    about = "project-like sizes, k = 50, 10 zero-event studies"),
  rare_one_event = list(x = c(0, 0, 0, 1, 0, 0), n = c(42, 22, 11, 18, 50, 17),
                        about = "one event in 160 patients: tau2 = 0, flat in tau2"),
  tiny_n = list(x = c(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3), n = c(1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 1, 3),
                about = "n of 1-3 per study, tau2 about 16"),
  alln_mostly = list(x = c(10, 20, 14, 30), n = c(10, 20, 15, 30),
                     about = "three of four studies with all n events"),
  all_zero = list(x = c(0, 0, 0, 0), n = c(10, 20, 15, 30), about = "all zero events: glmer stops"),
  all_n = list(x = c(10, 20, 15, 30), n = c(10, 20, 15, 30), about = "all n events: glmer stops"),
  k1 = list(x = 3, n = 20, about = "k = 1: rma.glmm stops"),
  constant_p = list(x = c(5, 10, 15, 20), n = c(50, 100, 150, 200),
                    about = "identical proportions: glmer stops (response is constant)"),
  separated_k2 = list(x = c(0, 10), n = c(10, 10),
                      about = "0/10 and 10/10: no finite ML tau2; R returns where Nelder-Mead stopped"),
  separated_k4 = list(x = c(0, 5, 0, 5), n = c(5, 5, 5, 5),
                      about = "0/5 and 5/5 twice: no finite ML tau2"),
  flat_zero_n = list(x = c(0, 0, 3, 10), n = c(10, 12, 20, 10),
                     about = "tau2 about 76, nearly flat likelihood: R stops about 0.03 from the optimum")
)

num <- function(v) if (is.null(v) || length(v) == 0) NA_real_ else as.numeric(v)[1]

fit_case <- function(case) {
  warn <- character(0)
  res <- withCallingHandlers(
    tryCatch(rma.glmm(measure = "PLO", xi = case$x, ni = case$n),
             error = function(e) structure(conditionMessage(e), class = "fit_error")),
    warning = function(w) {
      warn <<- c(warn, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  out <- list(x = I(case$x), n = I(case$n), about = case$about, warnings = I(warn))
  if (!is.null(case$published)) out$published <- case$published
  if (inherits(res, "fit_error")) {
    out$status <- "error"
    out$error <- unclass(res)
    return(out)
  }
  p <- predict(res)
  pt <- predict(res, transf = transf.ilogit)
  out$status <- if (length(warn)) "warning" else "ok"
  out$results <- list(
    estimate = num(res$beta), se = num(res$se), tau2 = num(res$tau2),
    i2 = num(res$I2), h2 = num(res$H2),
    qe_wald = num(res$QE.Wld), qe_wald_p = num(res$QEp.Wld),
    qe_lrt = num(res$QE.LRT), qe_lrt_p = num(res$QEp.LRT), qe_df = num(res$QE.df),
    loglik = num(res$fit.stats["ll", "ML"]), k = res$k,
    zval = num(res$zval), pval = num(res$pval),
    ci_lb = num(p$ci.lb), ci_ub = num(p$ci.ub), pi_lb = num(p$pi.lb), pi_ub = num(p$pi.ub),
    bt_estimate = num(pt$pred), bt_ci_lb = num(pt$ci.lb), bt_ci_ub = num(pt$ci.ub),
    bt_pi_lb = num(pt$pi.lb), bt_pi_ub = num(pt$pi.ub))
  out
}

golden <- list(
  generated_by = "tests/reference/glmm_reference.R",
  call = "rma.glmm(measure = 'PLO', xi = x, ni = n) with all defaults (ML, nAGQ = 7, lme4::glmer)",
  versions = list(R = R.version.string,
                  metafor = as.character(packageVersion("metafor")),
                  lme4 = as.character(packageVersion("lme4")),
                  jsonlite = as.character(packageVersion("jsonlite"))),
  cases = lapply(cases, fit_case))

writeLines(toJSON(golden, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null"), out_path)
cat("wrote", out_path, "\n")
