"""Experiment reports: results tables (RESULTS.md, results.json) collected from exp dirs."""
