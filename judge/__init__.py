"""The judge: scores episodes without ground truth (FLIP backward inference + progress rules)."""
