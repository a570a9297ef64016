"""Batch data-plane routes: `/batch/<account>/...` (the account's accountEndpoint)."""

from __future__ import annotations

from batchimage.sandbox.routing import Handler, Route
from batchimage.sandbox.services.batch_data.responses import jobs, nodes, pools

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
        nodes.list_supported_images,
        "Pools_ListSupportedImages",
    ),
    _route("GET", BASE + "/nodecounts", nodes.list_node_counts, "Pools_ListPoolNodeCounts"),
    _route("POST", BASE + "/pools", pools.create_pool, "Pools_CreatePool"),
    _route("GET", BASE + "/pools", pools.list_pools, "Pools_ListPools"),
    _route("HEAD", POOL, pools.pool_exists, "Pools_PoolExists"),
    _route("GET", POOL, pools.get_pool, "Pools_GetPool"),
    _route("PATCH", POOL, pools.update_pool, "Pools_UpdatePool"),
    _route("DELETE", POOL, pools.delete_pool, "Pools_DeletePool"),
    _route(
        "POST",
        POOL + "/updateproperties",
        pools.replace_properties,
        "Pools_ReplacePoolProperties",
    ),
    _route("POST", POOL + "/resize", pools.resize_pool, "Pools_ResizePool"),
    _route("POST", POOL + "/stopresize", pools.stop_resize, "Pools_StopPoolResize"),
    _route("POST", POOL + "/enableautoscale", pools.enable_autoscale, "Pools_EnablePoolAutoScale"),
    _route(
        "POST",
        POOL + "/disableautoscale",
        pools.disable_autoscale,
        "Pools_DisablePoolAutoScale",
    ),
    _route(
        "POST",
        POOL + "/evaluateautoscale",
        pools.evaluate_autoscale,
        "Pools_EvaluatePoolAutoScale",
    ),
    _route("GET", POOL + "/nodes", nodes.list_nodes, "Nodes_ListNodes"),
    _route("GET", NODE, nodes.get_node, "Nodes_GetNode"),
    _route("GET", NODE + "/files", nodes.list_node_files, "Nodes_ListNodeFiles"),
    _route(
        "HEAD",
        NODE + "/files/{file:path}",
        nodes.get_node_file,
        "Nodes_GetNodeFileProperties",
    ),
    _route("GET", NODE + "/files/{file:path}", nodes.get_node_file, "Nodes_GetNodeFile"),
    _route("POST", BASE + "/jobs", jobs.create_job, "Jobs_CreateJob"),
    _route("GET", BASE + "/jobs", jobs.list_jobs, "Jobs_ListJobs"),
    _route("GET", JOB, jobs.get_job, "Jobs_GetJob"),
    _route("DELETE", JOB, jobs.delete_job, "Jobs_DeleteJob"),
    _route("POST", JOB + "/tasks", jobs.create_task, "Tasks_CreateTask"),
    _route("GET", JOB + "/tasks", jobs.list_tasks, "Tasks_ListTasks"),
    _route(
        "POST",
        JOB + "/addtaskcollection",
        jobs.add_task_collection,
        "Tasks_CreateTaskCollection",
    ),
    _route("GET", TASK, jobs.get_task, "Tasks_GetTask"),
    _route("GET", TASK + "/files", jobs.list_task_files, "Tasks_ListTaskFiles"),
    _route("HEAD", TASK + "/files/{file:path}", jobs.get_task_file, "Tasks_GetTaskFileProperties"),
    _route("GET", TASK + "/files/{file:path}", jobs.get_task_file, "Tasks_GetTaskFile"),
]
