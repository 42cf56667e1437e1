# metafor on random cases of hundreds to a few thousand studies, for tests/test_meta_metafor_large.py.
#
# Usage:  Rscript tests/reference/random_reference.R cases.json results.json
#
# cases.json (written by the test, from a fixed seed) holds a list of cases, each with a `kind`:
#   pool     x, n, measure (PLO/PFT), method, test, and what to add: qp, pl, hat, rstandard,
#            leave1out, rstudent
#   metareg  x, n, mod, method, test            rma(yi, vi, mods = ~ mod)
#   subgroup x, n, group, method, test          rma(yi, vi, mods = ~ factor(group))
#   mh       ai, n1i, ci, n2i, measure          rma.mh
#   compare  ai, n1i, ci, n2i, measure, method  rma(measure=, method=)
# Numbers are written with 17 significant digits; NA/NaN/Inf become null. Each case's time is
# written beside it (`seconds`).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
cases <- fromJSON(args[1], simplifyVector = TRUE, simplifyDataFrame = FALSE)

num <- function(x) {
  x <- as.numeric(x)
  x[!is.finite(x)] <- NA
  x
}

fit_summary <- function(m) {
  out <- list(beta = num(m$beta), se = num(m$se), zval = num(m$zval), pval = num(m$pval),
              ci_lb = num(m$ci.lb), ci_ub = num(m$ci.ub), tau2 = num(m$tau2),
              se_tau2 = num(m$se.tau2), QE = num(m$QE), QEp = num(m$QEp), I2 = num(m$I2),
              H2 = num(m$H2), QM = num(m$QM), QMp = num(m$QMp),
              weights = num(weights(m)))
  out
}

run_case <- function(case) {
  kind <- case$kind
  if (kind %in% c("pool", "metareg", "subgroup")) {
    es <- escalc(measure = case$measure, xi = case$x, ni = case$n)
    m <- switch(kind,
      pool = rma(yi, vi, data = es, method = case$method, test = case$test),
      metareg = rma(yi, vi, mods = ~ case$mod, data = es, method = case$method,
                    test = case$test),
      subgroup = rma(yi, vi, mods = ~ factor(case$group), data = es, method = case$method,
                     test = case$test))
    out <- fit_summary(m)
    if (kind == "pool") {
      p <- predict(m)
      out$pi_lb <- num(p$pi.lb)
      out$pi_ub <- num(p$pi.ub)
    }
    add <- unlist(case$add)
    if ("qp" %in% add) {
      qp <- confint(m)$random
      out$qp <- list(tau2_lb = num(qp[1, 2]), tau2_ub = num(qp[1, 3]),
                     I2_lb = num(qp[3, 2]), I2_ub = num(qp[3, 3]))
    }
    if ("pl" %in% add) {
      pl <- confint(m, type = "PL")$random
      out$pl <- list(tau2_lb = num(pl[1, 2]), tau2_ub = num(pl[1, 3]))
    }
    if ("hat" %in% add) out$hat <- num(hatvalues(m))
    if ("rstandard" %in% add) out$rstandard <- num(rstandard(m)$z)
    if ("leave1out" %in% add) {
      l1 <- leave1out(m)
      out$leave1out <- list(estimate = num(l1$estimate), se = num(l1$se),
                            ci_lb = num(l1$ci.lb), ci_ub = num(l1$ci.ub), Q = num(l1$Q),
                            Qp = num(l1$Qp), tau2 = num(l1$tau2), I2 = num(l1$I2),
                            H2 = num(l1$H2))
    }
    if ("rstudent" %in% add) out$rstudent <- num(rstudent(m)$z)
    return(out)
  }
  if (kind == "mh") {
    m <- rma.mh(ai = case$ai, n1i = case$n1i, ci = case$ci, n2i = case$n2i,
                measure = case$measure)
    return(list(beta = num(m$beta), se = num(m$se), zval = num(m$zval), QE = num(m$QE),
                QEp = num(m$QEp), I2 = num(m$I2), H2 = num(m$H2), MH = num(m$MH),
                TA = num(m$TA), BD = num(m$BD), weights = num(weights(m))))
  }
  if (kind == "compare") {
    es <- escalc(measure = case$measure, ai = case$ai, n1i = case$n1i, ci = case$ci,
                 n2i = case$n2i)
    m <- rma(yi, vi, data = es, method = case$method, test = case$test)
    out <- fit_summary(m)
    p <- predict(m)
    out$pi_lb <- num(p$pi.lb)
    out$pi_ub <- num(p$pi.ub)
    return(out)
  }
  stop("unknown kind ", kind)
}

results <- lapply(cases, function(case) {
  seconds <- system.time(out <- run_case(case))[["elapsed"]]
  c(list(name = case$name, seconds = seconds), out)
})
versions <- list(R = paste(R.version$major, R.version$minor, sep = "."),
                 metafor = as.character(packageVersion("metafor")))
writeLines(toJSON(list(versions = versions, results = results), auto_unbox = TRUE,
                  digits = NA, na = "null", null = "null"), args[2])
