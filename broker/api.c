/* placeholder */
typedef int placeholder_api;
