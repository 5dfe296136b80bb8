"""Speaker-embedding training (wespeaker-style): the AAM-softmax loss head (:mod:`sasv.train.losses`), the
learning-rate and margin schedules as pure functions of the step (:mod:`sasv.train.schedules`), the cropped
training data (:mod:`sasv.train.data`) and the resumable epoch loop that ties them together
(:mod:`sasv.train.trainer`)."""
