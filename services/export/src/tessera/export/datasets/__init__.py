"""A project's dataset import, `POST /api/projects/{id}/dataset/`, as CVAT 2.80 does it.

cvat-sdk's `Project.import_dataset(format_name, filename)` (and `cvat-cli project
import-dataset <id> <file> --format ...`) uploads a dataset archive with CVAT's upload
protocol (`Upload-Start`, TUS, `Upload-Finish` with `format` and `filename`, plus
`conv_mask_to_poly` when given) and polls the request; `location=cloud_storage&
cloud_storage_id=&filename=` names an object of a cloud storage instead, in one POST.

What CVAT's server does with it (cvat/apps/engine/views.py `ProjectViewSet.dataset` and
cvat/apps/engine/background.py `DatasetImporter`; cvat/apps/dataset_manager/project.py
`import_dataset_as_project`, `ProjectAnnotationAndData.add_task`; bindings.py
`load_dataset_data`, `import_labels_to_project`, `import_dm_annotations`):

- the request is `import:dataset` (target `project`), one at a time per project (its rq id
  is the project's: a second one while the first runs is refused, "Import job already
  exists"); `conv_mask_to_poly` defaults to true (here false, as for task imports: masks
  stay masks unless the caller asks); a finished request has no `result_id`.
- the dataset is read with the format's importer. When the project has no labels, its
  labels are made of the dataset's categories (type "any", colours picked, no
  attributes). Otherwise every category must be a label of the project: a "background"
  category the project lacks is dropped with its annotations, any other fails the
  import ('Target project does not have label with name "..."').
- one new task per subset of the dataset, in the project and its organization, owned by
  the project's owner, named after the subset (an item without one is in "default") and
  with that `subset`; its media are the subset's items' images, named by their path
  below the images' common root (CVAT's `data_root`: the paths with the item ids cut off,
  common to every item), with `image_quality` 70, zip chunks and no cache.
- each subset's annotations go to its task, matched as a task import matches them; an
  item whose image the archive lacks is not media, and its annotations find no frame:
  the import fails ("Could not match item id ... with any task frame").
- it all runs in one database transaction: a failure leaves no task or label behind.

Tessera does the same (`runner.DatasetImportRunner`): the archive is read and checked to
the end (labels, every item's image) before anything is made; the tasks are then made
through the annotations service and their media through ingest one subset after the
other, and a failure deletes the tasks and labels made so far. How the upload's items
and images make the tasks is `layout`.
"""
