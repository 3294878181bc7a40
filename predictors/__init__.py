"""Accuracy and cost surrogates (bilinear, GCN, baselines) and their rank-correlation evaluation."""
