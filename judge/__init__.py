"""The judge: scores episodes that have no ground truth (FLIP backward inference + progress rules)."""
