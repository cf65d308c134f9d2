"""Reports of a build: statistics, pictures and the HTML report.
Part of pipelines: may import pipelines, datagen, scenes and schemas."""
