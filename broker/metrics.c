/* placeholder */
typedef int placeholder_metrics;
