"""A saved-and-loaded model must train on exactly as the original: same history and weights, bit for bit."""
import numpy as np

import fastnn


def assert_resumes_identically(model, restored, x, y, batch_size, epochs=1):
    """Fit both for ``epochs`` more epochs from the same seed (dropout masks, optimizer moments, BN statistics
    continue) and compare the histories and every weight exactly."""
    fastnn.utils.set_random_seed(1)
    h1 = model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False).history
    fastnn.utils.set_random_seed(1)
    h2 = restored.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=False).history
    assert h1 == h2
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
