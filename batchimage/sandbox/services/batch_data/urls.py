"""Batch data-plane routes: `/batch/<account>/...` (the account's accountEndpoint)."""

from __future__ import annotations

from batchimage.sandbox.routing import Handler, Route
from batchimage.sandbox.services.batch_data import job_routes, node_routes, pool_routes

BASE = "/batch/{account}"
POOL = BASE + "/pools/{pool}"
NODE = POOL + "/nodes/{node}"
JOB = BASE + "/jobs/{job}"
TASK = JOB + "/tasks/{task}"


def _route(method: str, path: str, handler: Handler, operation: str) -> Route:
    return Route(method, path, handler, operation, plane="batch")


ROUTES = [
    _route(
        "GET",
        BASE + "/supportedimages",
        node_routes.list_supported_images,
        "Pools_ListSupportedImages",
    ),
    _route("GET", BASE + "/nodecounts", node_routes.list_node_counts, "Pools_ListPoolNodeCounts"),
    _route("POST", BASE + "/pools", pool_routes.create_pool, "Pools_CreatePool"),
    _route("GET", BASE + "/pools", pool_routes.list_pools, "Pools_ListPools"),
    _route("HEAD", POOL, pool_routes.pool_exists, "Pools_PoolExists"),
    _route("GET", POOL, pool_routes.get_pool, "Pools_GetPool"),
    _route("PATCH", POOL, pool_routes.update_pool, "Pools_UpdatePool"),
    _route("DELETE", POOL, pool_routes.delete_pool, "Pools_DeletePool"),
    _route(
        "POST",
        POOL + "/updateproperties",
        pool_routes.replace_properties,
        "Pools_ReplacePoolProperties",
    ),
    _route("POST", POOL + "/resize", pool_routes.resize_pool, "Pools_ResizePool"),
    _route("POST", POOL + "/stopresize", pool_routes.stop_resize, "Pools_StopPoolResize"),
    _route(
        "POST", POOL + "/enableautoscale", pool_routes.enable_autoscale, "Pools_EnablePoolAutoScale"
    ),
    _route(
        "POST",
        POOL + "/disableautoscale",
        pool_routes.disable_autoscale,
        "Pools_DisablePoolAutoScale",
    ),
    _route(
        "POST",
        POOL + "/evaluateautoscale",
        pool_routes.evaluate_autoscale,
        "Pools_EvaluatePoolAutoScale",
    ),
    _route("GET", POOL + "/nodes", node_routes.list_nodes, "Nodes_ListNodes"),
    _route("GET", NODE, node_routes.get_node, "Nodes_GetNode"),
    _route("GET", NODE + "/files", node_routes.list_node_files, "Nodes_ListNodeFiles"),
    _route(
        "HEAD",
        NODE + "/files/{file:path}",
        node_routes.get_node_file,
        "Nodes_GetNodeFileProperties",
    ),
    _route("GET", NODE + "/files/{file:path}", node_routes.get_node_file, "Nodes_GetNodeFile"),
    _route("POST", BASE + "/jobs", job_routes.create_job, "Jobs_CreateJob"),
    _route("GET", BASE + "/jobs", job_routes.list_jobs, "Jobs_ListJobs"),
    _route("GET", JOB, job_routes.get_job, "Jobs_GetJob"),
    _route("DELETE", JOB, job_routes.delete_job, "Jobs_DeleteJob"),
    _route("POST", JOB + "/tasks", job_routes.create_task, "Tasks_CreateTask"),
    _route("GET", JOB + "/tasks", job_routes.list_tasks, "Tasks_ListTasks"),
    _route(
        "POST",
        JOB + "/addtaskcollection",
        job_routes.add_task_collection,
        "Tasks_CreateTaskCollection",
    ),
    _route("GET", TASK, job_routes.get_task, "Tasks_GetTask"),
    _route("GET", TASK + "/files", job_routes.list_task_files, "Tasks_ListTaskFiles"),
    _route(
        "HEAD", TASK + "/files/{file:path}", job_routes.get_task_file, "Tasks_GetTaskFileProperties"
    ),
    _route("GET", TASK + "/files/{file:path}", job_routes.get_task_file, "Tasks_GetTaskFile"),
]
