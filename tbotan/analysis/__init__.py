"""Analysis of what the store holds: the four-point S_B(q) with its Ornstein–Zernike fit, and the report
(the paper's figures with the numbers behind them).

``fourpoint`` imports only numpy and scipy (``tbotan.learn.evaluate`` uses it); ``report`` reads the store
and the training history and may import matplotlib and ``tbotan.learn.train``.
"""
