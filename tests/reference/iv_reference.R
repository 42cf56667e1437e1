# Golden reference for evidence/meta (inverse-variance, Mantel-Haenszel, subgroups,
# leave-one-out, meta-regression), computed with R metafor.
#
# Usage:  Rscript tests/reference/iv_reference.R [output.json]
# (default output: tests/reference/golden_iv.json next to this script)
#
# Deterministic (no random numbers, no data packages: every input is written out below, and each
# published case names the source its numbers were printed in) and fast (< 10 s).
# Numbers are written with 17 significant digits; NA/NaN/Inf become null.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_file <- if (length(args) >= 1) args[1] else {
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  here <- if (length(file_arg)) dirname(normalizePath(sub("^--file=", "", file_arg))) else "."
  file.path(here, "golden_iv.json")
}

num <- function(x) {
  x <- as.numeric(x)
  x[!is.finite(x)] <- NA
  x
}

# ------------------------------------------------------------------------------------------
# Data sets (inputs written out so the script needs no metadat)
# ------------------------------------------------------------------------------------------

prop_data <- list(
  # metadat::dat.pritz1997 (response-type proportions, many near 1)
  pritz1997 = list(x = c(16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6),
                   n = c(17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10)),
  # metadat::dat.nielweise2007 control arm (Stijnen et al. 2010, Table II)
  nielweise_ctrl = list(x = c(3, 3, 9, 7, 6, 4, 3, 2, 19, 2, 7, 1, 5, 11, 0, 1, 3, 1),
                        n = c(117, 35, 195, 136, 157, 139, 177, 39, 103, 122, 64, 58, 175, 180,
                              105, 262, 362, 69)),
  # treatment arm: 6 of 18 studies with 0 events
  nielweise_trt = list(x = c(0, 1, 2, 0, 5, 1, 1, 1, 1, 1, 0, 0, 3, 6, 0, 0, 1, 4),
                       n = c(116, 44, 208, 130, 151, 98, 174, 74, 97, 113, 66, 70, 188, 187,
                             118, 252, 345, 64)),
  # metadat::dat.debruin2009
  debruin2009 = list(x = c(11, 24, 179, 82, 60, 11, 99, 9, 88, 17, 26, 23, 40),
                     n = c(29, 33, 326, 240, 110, 29, 244, 17, 215, 26, 138, 55, 54)),
  # Miller (1978) with 0% and 100% studies
  miller1978 = list(x = c(0, 4, 9, 16, 20), n = c(10, 10, 15, 20, 20)),
  # small k and edge cases (made up, typical of CAR-T ICANS case series)
  k2 = list(x = c(3, 10), n = c(20, 25)),
  k3_zero = list(x = c(0, 4, 9), n = c(12, 30, 40)),
  k5 = list(x = c(2, 5, 1, 8, 12), n = c(15, 22, 9, 30, 40)),
  all_events = list(x = c(10, 8, 12), n = c(10, 8, 12)),
  some_all_events = list(x = c(10, 7, 12, 5), n = c(10, 9, 12, 8)),
  all_zero = list(x = c(0, 0, 0, 0), n = c(10, 15, 20, 8)),
  large_het = list(x = c(1, 15, 30, 2, 45), n = c(50, 20, 35, 60, 50)),
  k1 = list(x = c(3), n = c(12))
)

methods <- c("DL", "REML", "ML", "PM")
measures <- c(logit = "PLO", "freeman-tukey" = "PFT")
tests <- c(z = "z", hksj = "knha", "hksj-adhoc" = "adhoc")

backtransform <- function(v, measure, ni) {
  if (measure == "PLO") transf.ilogit(v) else transf.ipft.hm(v, targs = list(ni = ni))
}

# predict() output as a plain list; metafor names the PI cr.lb/cr.ub in some cases (k = 1)
pi_of <- function(pr) {
  pl <- unclass(pr)
  if (is.null(pl$pi.lb)) {
    pl$pi.lb <- pl$cr.lb
    pl$pi.ub <- pl$cr.ub
  }
  if (is.null(pl$pi.lb)) {  # EE model: no tau², the PI equals the CI
    pl$pi.lb <- pl$ci.lb
    pl$pi.ub <- pl$ci.ub
  }
  pl
}

# Q-profile CI for tau² / I² / H² (confint.rma.uni default type="QP"); NA where not defined
qp_ci <- function(res) {
  if (res$k <= res$p || res$method == "EE") return(list())
  ci <- suppressWarnings(confint(res))$random
  list(tau2_lb = num(ci["tau^2", "ci.lb"]), tau2_ub = num(ci["tau^2", "ci.ub"]),
       I2_lb = num(ci["I^2(%)", "ci.lb"]), I2_ub = num(ci["I^2(%)", "ci.ub"]),
       H2_lb = num(ci["H^2", "ci.lb"]), H2_ub = num(ci["H^2", "ci.ub"]))
}

fit_summary <- function(res, measure, ni) {
  pr <- pi_of(predict(res))
  c(qp_ci(res), list(
    estimate = num(res$beta[1]), se = num(res$se[1]), ci_lb = num(res$ci.lb[1]),
    ci_ub = num(res$ci.ub[1]), zval = num(res$zval[1]), pval = num(res$pval[1]),
    pi_lb = num(pr$pi.lb), pi_ub = num(pr$pi.ub),
    tau2 = num(res$tau2), se_tau2 = num(res$se.tau2), I2 = num(res$I2), H2 = num(res$H2),
    QE = num(res$QE), QEp = num(res$QEp), k = res$k,
    weights = num(weights(res)),
    bt_estimate = num(backtransform(res$beta[1], measure, ni)),
    bt_ci_lb = num(backtransform(res$ci.lb[1], measure, ni)),
    bt_ci_ub = num(backtransform(res$ci.ub[1], measure, ni)),
    bt_pi_lb = num(backtransform(pr$pi.lb, measure, ni)),
    bt_pi_ub = num(backtransform(pr$pi.ub, measure, ni))
  ))
}

# ------------------------------------------------------------------------------------------
# 1. Pooled single proportions: every data set x method x transform x ci
# ------------------------------------------------------------------------------------------

pool_cases <- list()
for (dname in names(prop_data)) {
  d <- prop_data[[dname]]
  for (tname in names(measures)) {
    measure <- measures[[tname]]
    es <- escalc(measure = measure, xi = d$x, ni = d$n)
    cp <- t(sapply(seq_along(d$x), function(i) binom.test(d$x[i], d$n[i])$conf.int))
    studies <- list(yi = num(es$yi), vi = num(es$vi), cp_low = num(cp[, 1]),
                    cp_high = num(cp[, 2]))
    for (method in methods) {
      for (ciname in names(tests)) {
        test <- tests[[ciname]]
        if (length(d$x) == 1 && test != "z") next  # k = 1: only the z interval exists
        res <- rma(yi, vi, data = es, method = method, test = test)
        pool_cases[[length(pool_cases) + 1]] <- list(
          name = paste(dname, tname, method, ciname, sep = "/"),
          events = d$x, totals = d$n, method = method, transform = tname, ci = ciname,
          expected = fit_summary(res, measure, d$n), studies = studies)
      }
    }
  }
}

# ------------------------------------------------------------------------------------------
# 2. Generic yi/vi cases from the published reference (rma.uni, tau2 estimators, knha, EE)
# ------------------------------------------------------------------------------------------

generic_data <- list(
  kacker2004 = list(yi = c(61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9),
                    vi = c(0.2025, 1.21, 0.09, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225)),
  pymare_unequal_k5 = list(yi = c(-0.073207, -0.415375, 5.226533, -0.785429, -2.088512),
                           vi = c(0.02, 0.050569, 2.721731, 0.041877, 5.0))
)
generic_cases <- list()
for (dname in names(generic_data)) {
  d <- generic_data[[dname]]
  for (method in c("EE", methods)) {
    for (test in c("z", "knha", "adhoc")) {
      if (method == "EE" && test != "z") next
      res <- rma(d$yi, d$vi, method = method, test = test)
      generic_cases[[length(generic_cases) + 1]] <- list(
        name = paste(dname, method, test, sep = "/"), yi = d$yi, vi = d$vi,
        method = method, test = test, expected = fit_summary(res, "PLO", NULL))
    }
  }
}

# ------------------------------------------------------------------------------------------
# 3. Two-group comparisons: rma.mh and rma(measure=OR/RR)
# ------------------------------------------------------------------------------------------

bcg <- list(ai = c(4, 6, 3, 62, 33, 180, 8, 505, 29, 17, 186, 5, 27),
            bi = c(119, 300, 228, 13536, 5036, 1361, 2537, 87886, 7470, 1699, 50448, 2493,
                   16886),
            ci = c(11, 29, 11, 248, 47, 372, 10, 499, 45, 65, 141, 3, 29),
            di = c(128, 274, 209, 12619, 5761, 1079, 619, 87892, 7232, 1600, 27197, 2338,
                   17825))
metabin <- list(ai = c(18, 22, 21, 14, 42, 80, 13, 37, 23, 19, 106, 170, 34, 18, 13, 12, 42),
                n1 = c(19, 34, 72, 22, 70, 183, 26, 61, 36, 45, 246, 386, 59, 45, 14, 26, 74),
                ci = c(12, 12, 15, 5, 13, 33, 18, 30, 12, 14, 76, 46, 17, 3, 14, 10, 40),
                n2 = c(22, 35, 68, 20, 32, 94, 50, 55, 25, 35, 208, 141, 32, 15, 18, 19, 75))
cmp_data <- list(
  bcg = list(ea = bcg$ai, na = bcg$ai + bcg$bi, eb = bcg$ci, nb = bcg$ci + bcg$di),
  metabin = list(ea = metabin$ai, na = metabin$n1, eb = metabin$ci, nb = metabin$n2),
  # zero cells, including one study with no events in either arm (double zero)
  zero_cells = list(ea = c(0, 2, 1, 4, 0), na = c(20, 25, 18, 30, 15),
                    eb = c(3, 5, 0, 6, 0), nb = c(20, 24, 19, 31, 14)),
  k1 = list(ea = c(3), na = c(20), eb = c(7), nb = c(21))
)
cmp_cases <- list()
for (dname in names(cmp_data)) {
  d <- cmp_data[[dname]]
  ai <- d$ea; bi <- d$na - d$ea; ci <- d$eb; di <- d$nb - d$eb
  for (measure in c("OR", "RR")) {
    es <- escalc(measure = measure, ai = ai, bi = bi, ci = ci, di = di)
    mh <- rma.mh(ai = ai, bi = bi, ci = ci, di = di, measure = measure)
    cmp_cases[[length(cmp_cases) + 1]] <- list(
      name = paste(dname, measure, "MH", sep = "/"), ea = d$ea, na = d$na, eb = d$eb,
      nb = d$nb, measure = measure, method = "MH", ci = "z",
      expected = list(estimate = num(mh$beta[1]), se = num(mh$se), ci_lb = num(mh$ci.lb),
                      ci_ub = num(mh$ci.ub), zval = num(mh$zval), pval = num(mh$pval),
                      QE = num(mh$QE), QEp = num(mh$QEp), I2 = num(mh$I2), H2 = num(mh$H2),
                      MH = num(mh$MH), MHp = num(mh$MHp), k = mh$k,
                      BD = num(mh$BD), BDp = num(mh$BDp), TA = num(mh$TA), TAp = num(mh$TAp),
                      weights = num(weights(mh)),
                      yi = num(es$yi), vi = num(es$vi)))
    for (method in c("REML", "DL")) {
      for (ciname in c("z", "hksj")) {
        if (length(ai) == 1 && ciname != "z") next
        res <- rma(yi, vi, data = es, method = method, test = tests[[ciname]])
        s <- fit_summary(res, "PLO", NULL)
        s[grep("^bt_", names(s))] <- NULL
        s$yi <- num(es$yi); s$vi <- num(es$vi)
        cmp_cases[[length(cmp_cases) + 1]] <- list(
          name = paste(dname, measure, method, ciname, sep = "/"), ea = d$ea, na = d$na,
          eb = d$eb, nb = d$nb, measure = measure, method = method, ci = ciname, expected = s)
      }
    }
  }
}

# ------------------------------------------------------------------------------------------
# 4. Subgroups: rma(yi, vi, mods = ~ factor(g)) (common tau²) and the separate-tau² Q between
# ------------------------------------------------------------------------------------------

sub_data <- list(
  pritz_3groups = list(d = prop_data$pritz1997,
                       g = c("A", "A", "B", "A", "B", "C", "A", "B", "C", "B", "A", "C", "C", "B")),
  nielweise_single = list(d = prop_data$nielweise_trt,
                          g = c(rep("early", 9), rep("late", 8), "single"))
)
sub_cases <- list()
for (sname in names(sub_data)) {
  d <- sub_data[[sname]]$d
  g <- sub_data[[sname]]$g
  for (tname in names(measures)) {
    measure <- measures[[tname]]
    es <- escalc(measure = measure, xi = d$x, ni = d$n)
    for (method in c("REML", "DL")) {
      for (ciname in c("z", "hksj")) {
        test <- tests[[ciname]]
        res <- rma(yi, vi, mods = ~ factor(g), data = es, method = method, test = test)
        lev <- sort(unique(g))
        per <- list()
        for (l in lev) {
          sel <- g == l
          t_l <- if (sum(sel) == 1) "z" else test
          r <- tryCatch(rma(yi, vi, data = es, subset = sel, method = method, test = t_l),
                        error = function(e) conditionMessage(e))
          if (is.character(r)) {
            # metafor stops (e.g. Fisher scoring did not converge); Python falls back to DL
            r_dl <- rma(yi, vi, data = es, subset = sel, method = "DL", test = t_l)
            per[[l]] <- c(fit_summary(r_dl, measure, d$n[sel]), list(error = r))
          } else {
            per[[l]] <- fit_summary(r, measure, d$n[sel])
          }
        }
        est <- sapply(lev, function(l) per[[l]]$estimate)
        se <- sapply(lev, function(l) per[[l]]$se)
        qb <- rma(est, sei = se, method = "EE")
        sub_cases[[length(sub_cases) + 1]] <- list(
          name = paste(sname, tname, method, ciname, sep = "/"), events = d$x, totals = d$n,
          groups = g, method = method, transform = tname, ci = ciname,
          expected = list(QM = num(res$QM), QMdf = num(res$QMdf), QMp = num(res$QMp),
                          tau2 = num(res$tau2), I2 = num(res$I2), QE = num(res$QE),
                          QEp = num(res$QEp), Qb_separate = num(qb$QE),
                          Qb_separate_p = num(qb$QEp), Qb_separate_df = length(lev) - 1,
                          per_group = per))
      }
    }
  }
}

# ------------------------------------------------------------------------------------------
# 5. Leave-one-out (leave1out), back-transformed with each subset's own n for PFT
# ------------------------------------------------------------------------------------------

l1o_cases <- list()
for (spec in list(list("pritz1997", "logit", "REML", "z"),
                  list("nielweise_trt", "freeman-tukey", "DL", "hksj"),
                  list("k3_zero", "logit", "PM", "hksj-adhoc"))) {
  d <- prop_data[[spec[[1]]]]
  measure <- measures[[spec[[2]]]]
  es <- escalc(measure = measure, xi = d$x, ni = d$n)
  res <- rma(yi, vi, data = es, method = spec[[3]], test = tests[[spec[[4]]]])
  l1 <- leave1out(res)
  bt <- sapply(seq_along(d$x), function(i) {
    ni <- d$n[-i]
    c(backtransform(l1$estimate[i], measure, ni), backtransform(l1$ci.lb[i], measure, ni),
      backtransform(l1$ci.ub[i], measure, ni))
  })
  l1o_cases[[length(l1o_cases) + 1]] <- list(
    name = paste(spec, collapse = "/"), events = d$x, totals = d$n, transform = spec[[2]],
    method = spec[[3]], ci = spec[[4]],
    expected = list(estimate = num(l1$estimate), se = num(l1$se), ci_lb = num(l1$ci.lb),
                    ci_ub = num(l1$ci.ub), Q = num(l1$Q), Qp = num(l1$Qp),
                    tau2 = num(l1$tau2), I2 = num(l1$I2), H2 = num(l1$H2),
                    bt_estimate = num(bt[1, ]), bt_ci_lb = num(bt[2, ]),
                    bt_ci_ub = num(bt[3, ])))
}

# ------------------------------------------------------------------------------------------
# 6. Meta-regression: rma(yi, vi, mods = ~ x) and predict(newmods = grid)
# ------------------------------------------------------------------------------------------

reg_cases <- list()
for (spec in list(list("pritz1997", "logit", "REML", "z"),
                  list("pritz1997", "logit", "DL", "hksj"),
                  list("nielweise_ctrl", "freeman-tukey", "REML", "hksj"),
                  list("nielweise_trt", "logit", "ML", "z"))) {
  d <- prop_data[[spec[[1]]]]
  measure <- measures[[spec[[2]]]]
  es <- escalc(measure = measure, xi = d$x, ni = d$n)
  mod <- log(d$n)  # study size as the moderator (a small-study-effect check)
  res <- rma(yi, vi, mods = ~ mod, data = es, method = spec[[3]], test = tests[[spec[[4]]]])
  grid <- seq(min(mod), max(mod), length.out = 5)
  pr <- pi_of(predict(res, newmods = grid))
  reg_cases[[length(reg_cases) + 1]] <- list(
    name = paste(spec, collapse = "/"), events = d$x, totals = d$n, moderator = mod,
    transform = spec[[2]], method = spec[[3]], ci = spec[[4]], grid = grid,
    expected = list(beta = num(res$beta), se = num(res$se), ci_lb = num(res$ci.lb),
                    ci_ub = num(res$ci.ub), pval = num(res$pval), tau2 = num(res$tau2),
                    I2 = num(res$I2), H2 = num(res$H2), QE = num(res$QE), QEp = num(res$QEp),
                    QM = num(res$QM), QMdf = num(res$QMdf), QMp = num(res$QMp),
                    pred = num(pr$pred), pred_ci_lb = num(pr$ci.lb), pred_ci_ub = num(pr$ci.ub),
                    pred_pi_lb = num(pr$pi.lb), pred_pi_ub = num(pr$pi.ub),
                    bt_pred = num(backtransform(pr$pred, measure, d$n)),
                    bt_ci_lb = num(backtransform(pr$ci.lb, measure, d$n)),
                    bt_ci_ub = num(backtransform(pr$ci.ub, measure, d$n)),
                    bt_pi_lb = num(backtransform(pr$pi.lb, measure, d$n)),
                    bt_pi_ub = num(backtransform(pr$pi.ub, measure, d$n))))
}

# ------------------------------------------------------------------------------------------
# 7. Published values (strings at printed precision) as printed in the source each case names
#    (`source`), with the call that reproduces them here.
# ------------------------------------------------------------------------------------------

published <- list(
  list(name = "stijnen2010_ctrl_PLO_REML", kind = "pool", data = "nielweise_ctrl",
       method = "REML", transform = "logit", ci = "z",
       source = "Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046, Table II",
       values = list(estimate = "-3.3018", se = "0.2378", tau2 = "0.6629",
                     bt_estimate = "0.0355", bt_ci_lb = "0.0226", bt_ci_ub = "0.0554")),
  list(name = "stijnen2010_trt_PLO_REML_zero_events", kind = "pool", data = "nielweise_trt",
       method = "REML", transform = "logit", ci = "z",
       source = "Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046, Table II",
       values = list(estimate = "-4.2604", se = "0.2589", tau2 = "0.3928",
                     bt_estimate = "0.0139", bt_ci_lb = "0.0084", bt_ci_ub = "0.0229")),
  list(name = "miller1978_PFT_EE_with_0_and_100pct", kind = "pft_ee", data = "miller1978",
       source = "Miller 1978, Am Stat 32:138; metafor transf.ipft.hm docs",
       values = list(bt_estimate = "0.6886", bt_ci_lb = "0.5734", bt_ci_ub = "0.7943")),
  list(name = "miller1978_PFT_EE_weighted", kind = "pft_ee",
       x = c(3, 6, 10, 1), n = c(11, 17, 21, 6),
       source = "Miller 1978, Am Stat 32:138", values = list(bt_estimate = "0.3595")),
  list(name = "bcg_logRR_REML", kind = "compare", data = "bcg", measure = "RR",
       method = "REML", ci = "z", source = "metafor documentation, dat.bcg (rma example)",
       values = list(estimate = "-0.7145", se = "0.1798", ci_lb = "-1.0669",
                     ci_ub = "-0.3622", tau2 = "0.3132", se_tau2 = "0.1664", I2 = "92.22",
                     H2 = "12.86", QE = "152.2330", zval = "-3.9744", pi_lb = "-1.87",
                     pi_ub = "0.44", bt_estimate = "0.49", bt_ci_lb = "0.34",
                     bt_ci_ub = "0.70", bt_pi_lb = "0.15", bt_pi_ub = "1.55")),
  list(name = "bcg_logRR_DL_vs_Stata_metan", kind = "compare", data = "bcg", measure = "RR",
       method = "DL", ci = "z", source = "Stata metan output, as in meta_reference.json",
       values = list(estimate = "-0.7141", ci_lb = "-1.0644", ci_ub = "-0.3638",
                     zval = "-3.9952", tau2 = "0.3088", I2 = "92.1173",
                     bt_estimate = "0.4896", bt_ci_lb = "0.3449", bt_ci_ub = "0.6950")),
  list(name = "bcg_logOR_DL_vs_Stata_metan", kind = "compare", data = "bcg", measure = "OR",
       method = "DL", ci = "z", source = "Stata metan output, as in meta_reference.json",
       values = list(estimate = "-0.7474", ci_lb = "-1.1242", ci_ub = "-0.3706",
                     zval = "-3.8873", tau2 = "0.3663", I2 = "92.6455",
                     bt_estimate = "0.4736", bt_ci_lb = "0.3249", bt_ci_ub = "0.6903")),
  list(name = "kacker2004_DL_statsmodels", kind = "generic", data = "kacker2004",
       method = "DL", test = "z", source = "statsmodels results_meta.py (metafor output)",
       values = list(estimate = "62.3901386044504", se = "0.245749668040304",
                     ci_lb = "61.9084781058787", ci_ub = "62.8717991030221",
                     tau2 = "0.288049246973751", se_tau2 = "0.269366223207558",
                     QE = "24.801897741835", QEp = "0.00167935146372742",
                     I2 = "67.744403741711", H2 = "3.10023721772938")),
  list(name = "kacker2004_DL_knha_statsmodels", kind = "generic", data = "kacker2004",
       method = "DL", test = "knha", source = "statsmodels results_meta.py (metafor output)",
       values = list(estimate = "62.3901386044504", se = "0.29477605699879",
                     ci_lb = "61.710383798052", ci_ub = "63.0698934108488",
                     tau2 = "0.288049246973751", QE = "24.801897741835",
                     I2 = "67.744403741711", pval = "2.77938607433693e-16")),
  list(name = "pymare_unequal_k5_DL_knha", kind = "generic", data = "pymare_unequal_k5",
       method = "DL", test = "knha", source = "pymare/tests/data/metafor_reference.json",
       values = list(estimate = "-0.25834451420148663", se = "0.5438714222095123",
                     ci_lb = "-1.76837366225205", ci_ub = "1.2516846338490768",
                     tau2 = "0.2838258527125208", pval = "0.659553629767158")),
  list(name = "pymare_unequal_k5_REML_knha", kind = "generic", data = "pymare_unequal_k5",
       method = "REML", test = "knha", source = "pymare/tests/data/metafor_reference.json",
       values = list(estimate = "0.18480405951699175", se = "1.039969587130599",
                     ci_lb = "-2.7026144102263308", ci_ub = "3.0722225292603147",
                     tau2 = "3.053904515552474", pval = "0.8675935214589725")),
  list(name = "meta_metabin_OR_DL_HK_statsmodels", kind = "compare", data = "metabin",
       measure = "OR", method = "DL", ci = "hksj",
       source = "statsmodels results_meta.py (R meta metabin, hakn=TRUE)",
       values = list(estimate = "0.429520368698268", se = "0.0915952752397692",
                     ci_lb = "0.235347059333852", ci_ub = "0.623693678062684",
                     tau2 = "0.0016783981912744", QE = "16.181374262823"))
)
glmm_published <- list(
  list(name = "stijnen2010_ctrl_GLMM", kind = "glmm", data = "nielweise_ctrl",
       source = "Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046, Table II",
       values = list(estimate = "-3.4964", se = "0.2570", tau2 = "0.8124",
                     bt_estimate = "0.0294", bt_ci_lb = "0.0180", bt_ci_ub = "0.0478")),
  list(name = "stijnen2010_trt_GLMM_zero_events", kind = "glmm", data = "nielweise_trt",
       source = "Stijnen, Hamza & Ozdemir 2010, Stat Med 29:3046, Table II",
       values = list(estimate = "-4.8121", se = "0.3555", tau2 = "0.8265",
                     bt_estimate = "0.0081", bt_ci_lb = "0.0040", bt_ci_ub = "0.0161")),
  list(name = "debruin2009_GLMM", kind = "glmm", data = "debruin2009",
       source = "metafor rma.glmm documentation example (dat.debruin2009)",
       values = list(bt_estimate = "0.4721", bt_ci_lb = "0.3822", bt_ci_ub = "0.5638",
                     bt_pi_lb = "0.2021", bt_pi_ub = "0.7594"))
)
# rma.glmm's own full-precision values (lme4 inside), for the end-to-end GLMM dispatch check
for (i in seq_along(glmm_published)) {
  d <- prop_data[[glmm_published[[i]]$data]]
  res <- rma.glmm(measure = "PLO", xi = d$x, ni = d$n)
  pr <- pi_of(predict(res))
  glmm_published[[i]]$metafor <- list(
    estimate = num(res$beta[1]), se = num(res$se), tau2 = num(res$tau2), I2 = num(res$I2),
    H2 = num(res$H2), QE_Wld = num(res$QE.Wld), QE_LRT = num(res$QE.LRT),
    ci_lb = num(res$ci.lb), ci_ub = num(res$ci.ub), pi_lb = num(pr$pi.lb),
    pi_ub = num(pr$pi.ub))
}
published <- c(published, glmm_published)

# Not copied on purpose: the GLMM cases of pritz1997 (owned by tests/test_meta_glmm.py), kacker2004 PM
# (statsmodels ran it with control tol=1e-9, not metafor's default), and meta's I² fraction /
# k-2 prediction interval for the metabin case (R meta conventions, not metafor's).

# metafor's own values for the published cases (a cross-check that this metafor agrees)
for (i in seq_along(published)) {
  p <- published[[i]]
  if (p$kind == "pft_ee") {
    d <- if (!is.null(p$data)) prop_data[[p$data]] else list(x = p$x, n = p$n)
    es <- escalc(measure = "PFT", xi = d$x, ni = d$n, add = 0)
    res <- rma(yi, vi, data = es, method = "EE")
    published[[i]]$x <- d$x
    published[[i]]$n <- d$n
    published[[i]]$metafor <- fit_summary(res, "PFT", d$n)
  }
}

versions <- list(
  R = R.version.string,
  metafor = as.character(packageVersion("metafor")),
  lme4 = if (requireNamespace("lme4", quietly = TRUE)) as.character(packageVersion("lme4")) else NA,
  jsonlite = as.character(packageVersion("jsonlite"))
)

golden <- list(
  generated_by = "tests/reference/iv_reference.R",
  versions = versions,
  pool = pool_cases,
  generic = generic_cases,
  compare = cmp_cases,
  subgroup = sub_cases,
  leave1out = l1o_cases,
  metareg = reg_cases,
  published = published,
  datasets = list(prop = prop_data, compare = cmp_data, generic = generic_data)
)

txt <- toJSON(golden, digits = I(17), auto_unbox = TRUE, na = "null", null = "null",
              pretty = TRUE)
writeLines(txt, out_file)
