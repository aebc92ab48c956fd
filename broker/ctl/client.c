/* placeholder */
typedef int placeholder_client;
