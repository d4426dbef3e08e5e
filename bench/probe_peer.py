"""The probe benchmark's peer (bench/probe.ts): scikit-learn on the same rows, timed here.

argv: X.npy (float32 [n, d]), y.npy (float32 [n, 1] class indices), the L2 label-issues uses, the L2 grid (JSON).
Our L2 penalises the mean log-loss (loss/n + l2/2 |W|^2), so sklearn's C = 1 / (n_train * l2).
Prints {"trainSeconds", "labelIssuesSeconds"} as JSON.
"""
import json
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

x = np.load(sys.argv[1]).astype(np.float64)
y = np.load(sys.argv[2]).reshape(-1).astype(np.int64)
l2 = float(sys.argv[3])
grid = json.loads(sys.argv[4])
n = len(y)

start = time.perf_counter()
xs = StandardScaler().fit_transform(x)
cv_train = n * 2 / 3
LogisticRegressionCV(Cs=[1 / (cv_train * g) for g in grid], cv=StratifiedKFold(3, shuffle=True, random_state=0), scoring='neg_log_loss', solver='lbfgs', max_iter=300, tol=1e-4).fit(xs, y)
train_seconds = time.perf_counter() - start

start = time.perf_counter()
model = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (n * 4 / 5 * l2), solver='lbfgs', max_iter=500))
cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method='predict_proba')
label_issues_seconds = time.perf_counter() - start

print(json.dumps({'trainSeconds': train_seconds, 'labelIssuesSeconds': label_issues_seconds}))
